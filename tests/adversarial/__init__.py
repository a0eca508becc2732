"""Adversarial tests, one module per part of docs/threat-model.md."""
