"""StateFun functions (created once by statefun-codegen)."""
