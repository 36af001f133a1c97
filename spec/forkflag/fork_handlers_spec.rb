# frozen_string_literal: true

require "open3"
require "rbconfig"
require "tmpdir"

# forkflag tells a forked child from its parent through native fork
# handlers; a process where they cannot be installed must not load it.
RSpec.describe "the native fork handlers" do
  # A library that makes glibc's handler registration fail (ENOMEM) for
  # forkflag's library only, preloaded into a Ruby process.
  let(:shim_source) { <<~C }
    #define _GNU_SOURCE
    #include <dlfcn.h>
    #include <errno.h>
    #include <string.h>

    /* pthread_atfork, linked into each library from libc_nonshared, calls this. */
    int __register_atfork(void (*prepare)(void), void (*parent)(void), void (*child)(void), void *dso) {
      Dl_info info;
      if (dladdr(dso, &info) && info.dli_fname && strstr(info.dli_fname, "forkflag"))
        return ENOMEM;
      int (*next)(void (*)(void), void (*)(void), void (*)(void), void *) =
        (int (*)(void (*)(void), void (*)(void), void (*)(void), void *))dlsym(RTLD_NEXT, "__register_atfork");
      return next(prepare, parent, child, dso);
    }
  C

  it "stops forkflag from loading with an error naming pthread_atfork when they cannot be installed" do
    Dir.mktmpdir("forkflag-atfork") do |dir|
      File.write(File.join(dir, "shim.c"), shim_source)
      shim = File.join(dir, "shim.so")
      _, err, built = Open3.capture3("cc", "-shared", "-fPIC", "-o", shim, File.join(dir, "shim.c"), "-ldl")
      raise "cannot build the shim: #{err}" unless built.success?

      lib = File.expand_path("../../lib", __dir__)
      script = 'require "forkflag"; puts "loaded"'
      out, status = Open3.capture2e({ "LD_PRELOAD" => shim }, RbConfig.ruby, "-I", lib, "-e", script)
      expect(status).not_to be_success
      expect(out).not_to include("loaded")
      expect(out).to match(/cannot install its fork handlers \(pthread_atfork: Cannot allocate memory/)
      expect(out).to include("Forkflag::Error")
      # The same process without the shim loads.
      out, status = Open3.capture2e(RbConfig.ruby, "-I", lib, "-e", script)
      expect([status.success?, out]).to eq([true, "loaded\n"])
    end
  end
end
