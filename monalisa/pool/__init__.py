"""The pool: the frames the offline stage makes and the kiosk shows (format, geometry, views, built-in)."""
