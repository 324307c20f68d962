#include "test.h"
void test_api(trun *r) { (void)r; }
