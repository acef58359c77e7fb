"""The research assistant's parts: the research job, the chat tools, the models."""
