// libjpeg-turbo's TurboJPEG 2 API (tjInitDecompress, tjDecompressHeader3, tjDecompress2, tjCompress2).
#include <turbojpeg.h>
