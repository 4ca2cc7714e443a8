"""Turning uploaded bytes into pixels: format sniffing and decoding."""
