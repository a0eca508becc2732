"""The command-line tools besides ``serve``: check, audit (and its report), deliveries and
redeliver, demo."""
