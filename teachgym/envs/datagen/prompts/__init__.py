"""Prompt templates of the LLM agents (package data): copy one into a folder, edit it, pass the folder as ``prompt_dir``."""
