#include "test.h"
void test_grad(trun *r) { (void)r; }
