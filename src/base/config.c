/* config.c - see config.h (implementation in progress). */
#include "base/config.h"
