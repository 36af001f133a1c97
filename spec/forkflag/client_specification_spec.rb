# frozen_string_literal: true

# Every case of the Unleash client specification, through the public Ruby
# API: the suite's state as a bootstrap payload, its contexts passed as the
# Hashes JSON.parse gives (String keys, camelCase). Each answer's
# explanation (Client#explain) must give the same answer.
RSpec.describe "Unleash client specification through Forkflag::Client" do
  suites = ClientSpecification.suites
  total = suites.sum { |s| (s["tests"] || []).size + (s["variantTests"] || []).size }
  passed = []

  after(:all) do
    puts "\nclient specification through the Ruby API: #{passed.size} of #{total} cases passed " \
         "in #{suites.size} files"
  end

  it "has the 279 cases of version 6.1.0" do
    expect(total).to eq(279)
  end

  suites.each do |suite|
    describe suite["file"] do
      # Some suites hold patterns that are meant not to compile (those
      # constraints evaluate to false); their warnings go to a buffer.
      let(:client) { Forkflag::Client.new(bootstrap: JSON.generate(suite["state"]), logger: Logger.new(StringIO.new)) }

      (suite["tests"] || []).each do |test|
        it test["description"] do
          expect(client.enabled?(test["toggleName"], test["context"])).to eq(test["expectedResult"])
          expect(client.explain(test["toggleName"], test["context"]).enabled?).to eq(test["expectedResult"])
          passed << test
        end
      end

      (suite["variantTests"] || []).each do |test|
        it "variant: #{test["description"]}" do
          expected = test["expectedResult"]
          variant = client.variant(test["toggleName"], test["context"])
          expect(variant.name).to eq(expected["name"])
          expect(variant.enabled?).to eq(expected["enabled"])
          expect(variant.feature_enabled?).to eq(expected["feature_enabled"] || expected["featureEnabled"] || false)
          payload = expected["payload"] && { type: expected["payload"]["type"], value: expected["payload"]["value"] }
          expect(variant.payload).to eq(payload)
          explained = client.explain(test["toggleName"], test["context"])
          expect(explained.variant.to_h).to eq(variant.to_h)
          expect(explained.enabled?).to eq(variant.feature_enabled?)
          passed << test
        end
      end
    end
  end
end
