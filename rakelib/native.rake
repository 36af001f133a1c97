# frozen_string_literal: true

require "shellwords"

# The precompiled platform gem, forkflag-<version>-<platform>.gem: the source
# gem's Ruby files and docs, without the Rust sources or extconf.rb, and the
# library the source gem's own extconf.rb builds (no test hooks), stripped,
# at lib/forkflag/<major.minor>/forkflag.so for each Ruby minor it carries
# (lib/forkflag/native_library.rb loads it). Its required_ruby_version admits
# exactly those minors, so RubyGems installs the source gem on any other.
module NativeGem
  extend FileUtils # Rake's sh
  # Where `rake native:gem` writes the gem.
  PKG = File.join(ROOT, "pkg")
  # Files of the source gem the platform gem leaves out: the build's inputs.
  BUILD_INPUTS = %r{\A(?:ext/|Cargo\.(?:toml|lock)\z)}

  module_function

  # The running Ruby's minor ("3.1"), as lib/forkflag/native_library.rb names it.
  def abi = RUBY_VERSION[/\A\d+\.\d+/]

  def build_dir = File.join(ROOT, "tmp/native", abi)

  def library = File.join(build_dir, "forkflag.so")

  def platform = Gem::Platform.local.to_s

  # The source gem's specification (forkflag.gemspec, files from git).
  def source_spec
    # A copy: Gem::Specification.load caches the object it returns.
    spec = Dir.chdir(ROOT) { Gem::Specification.load(File.join(ROOT, "forkflag.gemspec")) }
    spec&.dup or abort("forkflag.gemspec does not load")
  end

  def gem_file = File.join(PKG, "#{source_spec.name}-#{source_spec.version}-#{platform}.gem")

  # Builds the library as `gem install` of the source gem does (extconf.rb's
  # Makefile: release profile, no test-hooks feature), sharing the checkout's
  # cargo target directory so the dependencies `rake compile` built are reused.
  def build_library
    FileUtils.mkdir_p(build_dir)
    FileUtils.rm_f(library)
    sh(RbConfig.ruby, File.join(ROOT, "ext/forkflag/extconf.rb"), chdir: build_dir)
    sh("make", "TARGET_DIR=#{File.join(ROOT, "target")}", chdir: build_dir)
  end

  # Strips every debug section (the release profile's line tables included;
  # the symbol table stays, so backtraces still name functions) and checks
  # that none is left. Returns the sizes before and after.
  def strip_library
    before = File.size(library)
    sh("strip", "--strip-debug", library)
    left = `readelf -S --wide #{library.shellescape}`.scan(/\] (\.debug_\S+)/).flatten
    abort("#{library} still has debug sections after strip: #{left.join(", ")}") unless left.empty?
    [before, File.size(library)]
  end

  # The highest GLIBC_x.y symbol version the library needs (its glibc floor).
  def glibc_floor(path)
    versions = `objdump -T #{path.shellescape}`.scan(/\bGLIBC_(\d+(?:\.\d+)+)\b/).flatten.uniq
    abort("objdump -T found no GLIBC symbol versions in #{path}") if versions.empty?
    versions.max_by { |v| Gem::Version.new(v) }
  end

  # A requirement that admits exactly the given minors ("3.1", "3.2", ...),
  # which must be consecutive.
  def ruby_requirement(minors)
    versions = minors.map { |m| Gem::Version.new(m) }.sort
    versions.each_cons(2) do |a, b|
      next if b == Gem::Version.new("#{a.segments[0]}.#{a.segments[1] + 1}")

      abort("the platform gem can only carry consecutive Ruby minors, not #{minors.join(", ")}")
    end
    last = versions.last.segments
    [">= #{versions.first}", "< #{last[0]}.#{last[1] + 1}"]
  end

  # Copies the source gem's files but the build's inputs, and the libraries
  # ({ "3.1" => path }), under stage; returns the list of files.
  def stage_files(spec, stage, libraries)
    files = spec.files.grep_v(BUILD_INPUTS)
    files.each do |file|
      FileUtils.mkdir_p(File.join(stage, File.dirname(file)))
      FileUtils.cp(File.join(ROOT, file), File.join(stage, file))
    end
    libraries.each do |minor, path|
      FileUtils.mkdir_p(File.join(stage, "lib/forkflag", minor))
      FileUtils.cp(path, File.join(stage, "lib/forkflag", minor, "forkflag.so"))
      files << "lib/forkflag/#{minor}/forkflag.so"
    end
    files.sort
  end

  # Stages the platform gem under tmp/native/gem and builds it there with
  # `gem build`, as the source gem is built, so that its warnings show.
  def build_gem(libraries)
    spec = source_spec
    stage = File.join(ROOT, "tmp/native/gem")
    FileUtils.rm_rf(stage)
    spec.files = stage_files(spec, stage, libraries)
    spec.platform = platform
    spec.extensions = []
    spec.required_ruby_version = ruby_requirement(libraries.keys)
    File.write(File.join(stage, "forkflag.gemspec"), spec.to_ruby)
    FileUtils.mkdir_p(PKG)
    sh("gem", "build", "forkflag.gemspec", "--output", gem_file, chdir: stage)
    spec
  end
end

namespace :native do
  desc "Build the precompiled gem pkg/forkflag-<version>-<platform>.gem for the running Ruby " \
       "(no test hooks, debug info stripped); prints its size and glibc floor"
  task :gem do
    NativeGem.build_library
    before, after = NativeGem.strip_library
    spec = NativeGem.build_gem(NativeGem.abi => NativeGem.library)
    mib = ->(bytes) { format("%.1f MiB", bytes / 1024.0 / 1024) }
    puts "#{File.basename(NativeGem.gem_file)}: #{mib[File.size(NativeGem.gem_file)]} " \
         "(Ruby #{spec.required_ruby_version}, platform #{spec.platform})"
    puts "lib/forkflag/#{NativeGem.abi}/forkflag.so: #{mib[before]} built, #{mib[after]} stripped"
    puts "glibc floor: GLIBC_#{NativeGem.glibc_floor(NativeGem.library)} (the highest symbol version it needs)"
  end
end

# The installed-gem check's Ruby side, shared with gem:check.
INSTALLED_GEM_CHECK = File.join(__dir__, "installed_gem_check.rb")

# Runs the block outside Bundler: an installed gem must work on its own.
def unbundled(&)
  defined?(Bundler) ? Bundler.with_unbundled_env(&) : yield
end

# Installing and running the platform gem where no Rust toolchain can be
# reached: a PATH of only ruby, gem, env and sh, an otherwise empty
# environment, and (when the check runs as root and `unshare` works) every
# libclang on the machine hidden by mounts in a private mount namespace.
module NoToolchain
  # Where Debian (and a hand-built LLVM) keep libclang.
  LIBCLANG = ["/usr/lib/llvm-*", "/usr/lib/*/libclang*", "/usr/local/lib/libclang*"].freeze

  module_function

  # The path of an executable on PATH, or nil.
  def executable(name)
    ENV.fetch("PATH").split(File::PATH_SEPARATOR).map { |dir| File.join(dir, name) }
       .find { |path| File.executable?(path) }
  end

  # A directory of symlinks to the only tools the check may use.
  def bin(tmp)
    dir = File.join(tmp, "bin")
    FileUtils.mkdir_p(dir)
    { "ruby" => RbConfig.ruby, "gem" => executable("gem"), "env" => executable("env"), "sh" => executable("sh") }
      .each { |name, target| File.symlink(target || abort("#{name} is not on PATH"), File.join(dir, name)) }
    dir
  end

  # libclang's files, not their links (a mount over a symlink fails; one
  # over the file hides every link to it), files before directories (a
  # directory's tmpfs would hide the files under it).
  def libclang_files
    Dir[*LIBCLANG].filter_map { |path| File.realpath(path) if File.exist?(path) }.uniq
                  .sort_by { |path| File.directory?(path) ? 1 : 0 }
  end

  # The command prefix that runs a command with libclang hidden, or [] where
  # a mount namespace cannot be made (not root, or no unshare).
  def hide_libclang
    unshare = executable("unshare")
    mount = executable("mount")
    return [] unless Process.uid.zero? && unshare && mount && system(unshare, "--mount", "true", err: File::NULL)

    mounts = libclang_files.map do |path|
      source = File.directory?(path) ? "-t tmpfs none" : "--bind /dev/null"
      "#{mount} #{source} #{path.shellescape}"
    end
    [unshare, "--mount", "--propagation", "private", "/bin/sh", "-c", [*mounts, 'exec "$@"'].join(" && "), "hide"]
  end
end

namespace :native do
  desc "Install the platform gem into an empty GEM_HOME with no cargo, rustc or libclang reachable, " \
       "then require it elsewhere, evaluate, fork and evaluate in the child"
  task check: :gem do
    unbundled do
      Dir.mktmpdir("forkflag-native") do |tmp|
        bin = NoToolchain.bin(tmp)
        work = File.join(tmp, "work")
        home = File.join(tmp, "home")
        FileUtils.mkdir_p(work)
        FileUtils.cp([NativeGem.gem_file, INSTALLED_GEM_CHECK], work)
        env = { "PATH" => bin, "HOME" => work, "GEM_HOME" => home, "GEM_PATH" => home, "LANG" => "C.UTF-8",
                "FORKFLAG_EXPECTED_LIBRARY" => "platform" }
        hide = NoToolchain.hide_libclang
        puts "libclang: not hidden (no mount namespace here); the check only finds it unmapped" if hide.empty?
        run = ->(*cmd) { sh(env, *hide, *cmd, unsetenv_others: true, chdir: work) }
        run.call(File.join(bin, "sh"), "-c", <<~SH)
          for tool in cargo rustc rustup llvm-config clang; do
            if command -v "$tool"; then echo "$tool is reachable"; exit 1; fi
          done
          echo "cargo, rustc, rustup, llvm-config, clang: not found"
        SH
        unless hide.empty?
          run.call(File.join(bin, "ruby"), "-e", <<~RUBY)
            left = Dir[*#{NoToolchain::LIBCLANG.inspect}].select do |f|
              File.exist?(f) && (File.directory?(f) ? !Dir.empty?(f) : !File.zero?(f))
            end
            abort("libclang is readable: \#{left.join(", ")}") unless left.empty?
            puts "libclang: hidden"
          RUBY
        end
        run.call(File.join(bin, "gem"), "install", "--local", "--no-document", File.basename(NativeGem.gem_file))
        built = Dir[File.join(home, "extensions/**/*")]
        abort("installing the platform gem built an extension: #{built.join(", ")}") unless built.empty?
        run.call(File.join(bin, "ruby"), File.basename(INSTALLED_GEM_CHECK))
      end
    end
  end
end
