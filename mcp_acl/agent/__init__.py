"""Agents that run small models on Ollama through the gateway."""
