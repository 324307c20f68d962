#include "test.h"
void test_formats(trun *r) { (void)r; }
