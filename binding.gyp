{
  "targets": [
    {
      "target_name": "tccl_shm",
      "sources": ["native/shm.c"],
      "cflags": ["-O2", "-Wall", "-Wextra"],
      "libraries": ["-lrt"]
    }
  ]
}
