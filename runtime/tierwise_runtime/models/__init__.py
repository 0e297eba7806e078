"""Model families in plain torch: a BERT-style encoder and a Llama-style decoder."""
