"""Fleet promotion bot: a GitHub App that promotes container images through a Flux fleet."""

__version__ = "0.1.0"
