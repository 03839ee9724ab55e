// libpng's simplified API (png_image_*) is enough for reading and writing every colour type.
#include <png.h>
