#include "test_shims.h"
