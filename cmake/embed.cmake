# Writes the bytes of IN as `const char cv_catalog_builtin[]` (NUL-terminated) into OUT.
file(READ ${IN} hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
file(WRITE ${OUT} "/* generated from data/mcp-templates.json */\n#include <stddef.h>\nconst char cv_catalog_builtin[] = {${bytes}0x00};\nconst size_t cv_catalog_builtin_len = sizeof(cv_catalog_builtin) - 1;\n")
