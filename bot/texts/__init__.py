"""The texts the bot writes: check-run summaries, PR titles and bodies, replies, the dashboard,
and the hidden markers and commit trailers that keep its state in GitHub."""
