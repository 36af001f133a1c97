# frozen_string_literal: true

# Run by `rake gem:check` and `rake native:check` (not loaded by rake): in a
# fresh GEM_HOME where forkflag was just installed, from a directory outside
# the checkout, with no -I. FORKFLAG_EXPECTED_LIBRARY says which library must
# have been loaded: "source" (the one extconf.rb built into the gem's
# extension directory) or "platform" (the precompiled one in the gem's
# lib/forkflag/<major.minor>/).

require "forkflag"

BOOTSTRAP = <<~JSON
  {"version":2,"features":[
    {"name":"on","enabled":true,"strategies":[{"name":"default"}]},
    {"name":"off","enabled":false,"strategies":[{"name":"default"}]},
    {"name":"staff","enabled":true,"strategies":[{"name":"userWithId","parameters":{"userIds":"7"}}]}
  ]}
JSON

# The client's answers, as a child's exit status: 0 when all are right.
def answers_right?(client)
  client.enabled?("on") && !client.enabled?("off") && client.enabled?("staff", { userId: "7" }) &&
    !client.enabled?("staff", { userId: "8" })
end

client = Forkflag::Client.new(bootstrap: BOOTSTRAP)
abort("the installed gem does not evaluate") unless answers_right?(client)
pid = fork { exit(answers_right?(client) ? 0 : 3) }
_, status = Process.wait2(pid)
abort("the forked child's evaluations failed: #{status.inspect}") unless status.exitstatus.zero?
puts "evaluates, and so does a forked child (exit status #{status.exitstatus})"

# Built without the test-hooks feature: none of the hooks, public or private;
# and the native helpers the facade calls are private.
hooks = { Forkflag::Client => %i[_noop _names_remembered _remembers?],
          Forkflag.singleton_class => %i[_bench_spawn_thread] }
shipped = hooks.flat_map do |owner, names|
  names.select { |n| owner.method_defined?(n) || owner.private_method_defined?(n) }
end
abort("the installed gem has test hooks: #{shipped.join(", ")}") unless shipped.empty?
[Forkflag::Client, Forkflag::Context, Forkflag::Variant].each do |klass|
  public = (klass.public_instance_methods + klass.singleton_methods).grep(/\A_(?!_)/)
  abort("#{klass} has public native helpers: #{public.join(", ")}") unless public.empty?
end
puts "no test hooks, no public _ methods"

spec = Gem.loaded_specs.fetch("forkflag")
expected = case ENV.fetch("FORKFLAG_EXPECTED_LIBRARY")
           # extconf.rb's build, which RubyGems installs in the extension
           # directory and copies into the gem's lib/.
           when "source" then [File.join(spec.full_gem_path, "lib/forkflag/forkflag.so"),
                               File.join(spec.extension_dir, "forkflag/forkflag.so")]
           when "platform"
             [File.join(spec.full_gem_path, "lib/forkflag", RUBY_VERSION[/\A\d+\.\d+/], "forkflag.so")]
           end
loaded = $LOADED_FEATURES.grep(%r{/forkflag\.so\z})
home = File.realpath(ENV.fetch("GEM_HOME"))
unless loaded.size == 1 && expected.include?(loaded.first) && File.realpath(loaded.first).start_with?("#{home}/")
  abort("loaded #{loaded.inspect}, expected one of #{expected.join(", ")} (GEM_HOME #{home})")
end
clang = File.readlines("/proc/self/maps").grep(/libclang/)
abort("libclang is mapped: #{clang.first}") unless clang.empty?
puts "installed gem works: forkflag #{Forkflag::VERSION} (#{spec.platform}) from #{loaded.first}"
