/* iobuf.c - see iobuf.h (implementation in progress). */
#include "base/iobuf.h"
