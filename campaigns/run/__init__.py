"""Running campaigns on the scheduler's leader: sheets mailed, calls placed through Twilio,
their callbacks, recordings kept and expired."""
