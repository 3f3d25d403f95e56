"""Placeholder replaced by the client work: generates the sync client from the async source."""

import sys

if __name__ == "__main__":
    sys.exit(0)
