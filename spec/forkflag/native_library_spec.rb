# frozen_string_literal: true

require "open3"
require "tmpdir"
require "fileutils"

# Where lib/forkflag/native_library.rb finds the compiled library: a copy of
# lib/ laid out as the precompiled gem or as the checkout, loaded in a fresh
# Ruby.
RSpec.describe "Forkflag::NativeLibrary" do
  let(:lib) { File.expand_path("../../lib", __dir__) }
  let(:built) { File.join(lib, "forkflag/forkflag.so") }
  let(:abi) { RUBY_VERSION[/\A\d+\.\d+/] }

  # Copies the Ruby files of lib/ (not the library) into dir/lib.
  def ruby_files_into(dir)
    Dir.chdir(lib) do
      Dir["**/*.rb"].each do |file|
        FileUtils.mkdir_p(File.join(dir, "lib", File.dirname(file)))
        FileUtils.cp(file, File.join(dir, "lib", file))
      end
    end
    File.join(dir, "lib")
  end

  def load_from(copy)
    script = 'require "forkflag"; Forkflag::Client.new(bootstrap: %({"version":2,"features":[]})).close; ' \
             'puts $LOADED_FEATURES.grep(/forkflag\.so\z/)'
    # Outside Bundler, whose setup would load the checkout's gemspec.
    Open3.capture2e({ "RUBYOPT" => nil, "RUBYLIB" => nil }, RbConfig.ruby, "--disable-gems", "-I", copy, "-e", script,
                    chdir: Dir.tmpdir)
  end

  it "loads lib/forkflag/<major.minor>/forkflag.so first, as the precompiled gem lays it out" do
    Dir.mktmpdir do |dir|
      copy = ruby_files_into(dir)
      FileUtils.mkdir_p(File.join(copy, "forkflag", abi))
      FileUtils.cp(built, File.join(copy, "forkflag", abi, "forkflag.so"))
      FileUtils.cp(built, File.join(copy, "forkflag", "forkflag.so"))
      out, status = load_from(copy)
      expect(status).to be_success, out
      expect(out.strip).to eq(File.join(copy, "forkflag", abi, "forkflag.so"))
    end
  end

  it "falls back to lib/forkflag/forkflag.so, where rake compile puts it" do
    Dir.mktmpdir do |dir|
      copy = ruby_files_into(dir)
      FileUtils.cp(built, File.join(copy, "forkflag", "forkflag.so"))
      out, status = load_from(copy)
      expect(status).to be_success, out
      expect(out.strip).to eq(File.join(copy, "forkflag", "forkflag.so"))
    end
  end

  it "raises the LoadError of a library that is there but cannot load, not the next place's" do
    Dir.mktmpdir do |dir|
      copy = ruby_files_into(dir)
      FileUtils.mkdir_p(File.join(copy, "forkflag", abi))
      File.write(File.join(copy, "forkflag", abi, "forkflag.so"), "not a shared object")
      FileUtils.cp(built, File.join(copy, "forkflag", "forkflag.so"))
      out, status = load_from(copy)
      expect(status).not_to be_success
      expect(out).to include("LoadError").and include(File.join(copy, "forkflag", abi, "forkflag.so"))
    end
  end
end
