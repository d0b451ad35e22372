"""STAR Cryoelectronics SQUID electronics (PFL-102 cards behind a PCI-100)."""
