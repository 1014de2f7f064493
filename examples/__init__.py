"""Example applications built only on portside's ports."""
