"""fingerspell: read the 24 static ASL fingerspelling letters from 28x28 grey hand images."""

__version__ = "0.1.0"
