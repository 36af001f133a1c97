# frozen_string_literal: true

require "English"

# API documentation with YARD (Debian's yard; options in .yardopts, output in
# tmp/doc). The native methods magnus defines are invisible to YARD: each is
# documented with an @!method directive in its class's Ruby file, and
# doc:check finds any public method, native or Ruby, that YARD does not know.

# Loads every file of the gem (its optional integrations where their gem is
# installed) and prints each public method of forkflag's and the Unleash
# layer's classes and modules as YARD paths (Class#method, Class.method).
PUBLIC_METHODS = <<~'RUBY'
  require "forkflag"
  require "forkflag/unleash"
  %w[rspec rails].each do |gem|
    require gem
  rescue LoadError
    nil
  end
  Dir[File.join(ARGV.fetch(0), "lib/**/*.rb")].each do |file|
    require file
  rescue LoadError
    nil # an integration whose server is not installed here
  end
  module_name = Module.instance_method(:name) # some modules define their own name
  ObjectSpace.each_object(Module).each do |mod|
    name = module_name.bind_call(mod)
    next unless name&.match?(/\A(Forkflag|Unleash|ForkSafe)(::|\z)/)

    mod.public_instance_methods(false).each { |m| puts "#{name}##{m}" }
    mod.singleton_class.public_instance_methods(false).each { |m| puts "#{name}.#{m}" }
  end
RUBY

namespace :doc do
  desc "Fail unless `yard stats --list-undoc` reports 100% documented and YARD knows every public method " \
       "the loaded gem has (native ones included)"
  task check: :compile do
    stats = `yard stats --list-undoc 2>&1`
    puts stats
    abort("yard stats failed") unless $CHILD_STATUS.success?
    abort("the public API is not fully documented (see the list above)") unless stats.include?("100.00% documented")

    require "yard"
    YARD::Registry.load!(File.join(ROOT, ".yardoc"))
    methods = IO.popen([RbConfig.ruby, "-I", File.join(ROOT, "lib"), "-e", PUBLIC_METHODS, ROOT], &:read).split
    abort("could not list the public methods") unless $CHILD_STATUS.success? && !methods.empty?
    unknown = methods.uniq.reject do |path|
      object = YARD::Registry.at(path)
      object && (!object.docstring.blank? || object.has_tag?(:api) || object.has_tag?(:private))
    end
    unless unknown.empty?
      abort("public methods without YARD docs (native ones need an @!method in their class's Ruby file):\n  " \
            "#{unknown.sort.join("\n  ")}")
    end
    puts "YARD documents all #{methods.uniq.size} public methods the loaded gem defines"
  end
end

desc "Render the API documentation into tmp/doc (YARD, options in .yardopts)"
task :doc do
  sh_in_root("yard", "doc")
end
