"""What more than one package needs: page decoding, report titles, the data directory, limits.

The bottom layer of the project (docs/architecture.md): it imports nothing of nianbao's
other packages, and nothing heavy, so the crawler's start-up stays light.
"""
