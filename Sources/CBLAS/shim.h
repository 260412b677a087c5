// OpenBLAS's own cblas.h (pinned through pkg-config `openblas`) declares openblas_set_num_threads.
#include <cblas.h>
