#include "test.h"
void test_ops(trun *r) { (void)r; }
