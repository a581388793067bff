"""Sign-on letters and the organizations' participation in them."""
