-- Each oracle has its own database.
CREATE DATABASE exchange OWNER oracles;
CREATE DATABASE recording OWNER oracles;
