"""Adversarial attacks of both seeds on the detectors (torch, no Qt)."""
