"""The live wall: a snapshot of now and today, per service, pushed to every screen."""
