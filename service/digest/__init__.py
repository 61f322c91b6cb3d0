"""The weekly e-mail digest for management: build, render, send."""
