"""Qt and napari front ends. The only package (with the npe2 entry points) that imports them."""
