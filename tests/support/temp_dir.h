// Test fixture: a fresh folder under /tmp, removed with everything in it.
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <string>

#include <doctest/doctest.h>

namespace r5::test {

struct TempDir {
  std::filesystem::path path;
  explicit TempDir(const std::string& name) {
    std::string tmpl = "/tmp/r5cfs-" + name + "-XXXXXX";
    REQUIRE(mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
};

}  // namespace r5::test
