"""« Rappels à faire »: callers with a lost call who have not been reached since."""
