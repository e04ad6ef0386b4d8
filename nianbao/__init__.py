"""The application shell: the ``nianbao`` command, the nightly job and the bundled demo.

The only package that wires the crawler, the raw archive and the dataset together
(docs/architecture.md). It imports nothing here, so ``nianbao --help`` stays light.
"""
