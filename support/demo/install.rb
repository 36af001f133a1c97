# frozen_string_literal: true

require "digest"
require "fileutils"
require "rbconfig"

# Builds and installs the gem the demo runs.
module Demo
  module_function

  def run!(*cmd, env: {}, chdir: ROOT)
    ok = system(env, *cmd, chdir: chdir, out: File::NULL, err: File.join(WORK, "build.log"))
    abort("demo: #{cmd.join(" ")} failed; see #{WORK}/build.log") unless ok
  end

  # Builds and installs the gem; returns the environment that uses it.
  def install_gem
    gems = File.join(WORK, "gems")
    stamp = File.join(gems, ".source-digest")
    digest = source_digest
    if File.exist?(stamp) && File.read(stamp) == digest
      step("forkflag gem already installed in #{gems}")
    else
      step("building and installing the gem into #{gems} (compiles the Rust core: a few minutes the first time)")
      FileUtils.rm_rf(gems)
      gem_file = File.join(WORK, "forkflag.gem")
      run!("gem", "build", "forkflag.gemspec", "--output", gem_file)
      run!("gem", "install", "--local", "--no-document", "--install-dir", gems, gem_file)
      File.write(stamp, digest)
    end
    default_paths = `#{RbConfig.ruby} -e 'print Gem.default_path.join(":")'`
    { "GEM_HOME" => gems, "GEM_PATH" => "#{gems}:#{default_paths}", "BUNDLE_GEMFILE" => nil, "RUBYOPT" => nil }
  end

  def source_digest
    files = Dir.chdir(ROOT) { Dir["{lib,ext}/**/*.{rb,rs,toml}", "Cargo.*", "forkflag.gemspec"].sort }
    Digest::SHA256.hexdigest(files.map { |f| f + File.read(File.join(ROOT, f)) }.join)
  end
end
