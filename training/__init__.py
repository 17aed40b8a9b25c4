"""Training of likelihood approximation networks (LAN, CPN, OPN) with Lightning."""

__all__: list[str] = []
