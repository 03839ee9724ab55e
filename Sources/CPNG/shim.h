// libpng's simplified API (png_image_*) is enough for reading and writing every colour type.
#include <png.h>
// zlib (libpng's own dependency) reads the gzip-compressed idx files of Fashion-MNIST.
#include <zlib.h>
