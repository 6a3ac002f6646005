"""The embedded mini dataset: speech synthesised here, generated noises and RIRs, URGENT-style simulation."""
