# frozen_string_literal: true

require "json"

# The Unleash client specification installed from npm by the test command.
module ClientSpecification
  DEFAULT_DIR = File.expand_path(
    "../../support/client-specification/node_modules/@unleash/client-specification/specifications", __dir__
  )

  module_function

  def dir
    ENV.fetch("FORKFLAG_CLIENT_SPEC_DIR", DEFAULT_DIR)
  end

  # @return [Array<Hash>] every suite of the specification, parsed
  def suites
    index = File.join(dir, "index.json")
    unless File.exist?(index)
      raise "the client specification is not installed at #{dir}; run `npm ci` in support/client-specification"
    end

    JSON.parse(File.read(index)).map { |file| JSON.parse(File.read(File.join(dir, file))).merge("file" => file) }
  end
end
