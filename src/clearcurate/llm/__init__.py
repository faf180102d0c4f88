"""LLM backends: where models come from (`models`) and how we call them in batches (`hf`)."""
