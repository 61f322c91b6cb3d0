"""The demo switchboard: simulated Twilio traffic fed through the real webhook path."""
