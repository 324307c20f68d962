#include "test.h"
void test_pool(trun *r) { (void)r; }
