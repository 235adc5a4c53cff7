"""Budget planning on the champion's posterior: where the next dollar should go, with risk."""
