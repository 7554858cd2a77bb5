//! A1111 infotext ("parameters") and PNG text chunks.
